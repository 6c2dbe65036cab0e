//! The statd HA callout (`rpc.statd -H hanfs-statd-callout`, or
//! `[statd] ha-callout=` in /etc/nfs.conf).
//!
//! rpc.statd (nfs-utils 2.6.2, `utils/statd/monitor.c`, `callback.c`) runs
//! the callout synchronously, as its unprivileged user (the owner of
//! `sm/`), with its working directory in the statd directory:
//!
//! - `add-client MON_NAME MY_NAME` after a successful new SM_MON, once the
//!   record is in `sm/` (a repeated SM_MON with the same cookie makes no
//!   callout);
//! - `del-client MON_NAME MY_NAME` for SM_UNMON and for each peer of
//!   SM_UNMON_ALL, *before* statd removes the record line;
//! - `sm-notify MON_NAME SENDER_ADDR STATE` for each SM_NOTIFY received
//!   (ignored here).
//!
//! For each instance registered on this node (see [`super::registry`]) it
//! copies the client's record line into that instance's holding directory
//! (add-client) or removes it (del-client), atomically, each instance in
//! its own child process with a time limit, so a hung shared storage costs
//! statd at most [`BUDGET`] and never the others' updates. It always exits
//! 0: statd ignores the status, and must never be held up by us.
//!
//! Which instance a client belongs to cannot be told: `my_name` is the
//! node's name whichever floating address the client used. So every
//! registered holding directory gets every client; a client notified from
//! an address it never used ignores the notification.

use super::holding::{self, Change};
use super::record::{self, MonitorRecord};
use super::registry::{self, Registration, Registry};
use crate::ocf::Deadline;
use crate::sys::bounded;
use std::path::Path;
use std::time::Duration;

/// The most one callout may take, all instances together.
pub const BUDGET: Duration = Duration::from_secs(5);
/// How long to wait for the instance lock (held by a monitor's reconcile).
pub const LOCK_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Add {
        mon_name: String,
        my_name: String,
    },
    Del {
        mon_name: String,
        my_name: String,
    },
    /// `sm-notify` and anything else: nothing to do.
    Other(String),
}

impl Event {
    /// From the callout's arguments (without the program name).
    pub fn parse(args: &[String]) -> Event {
        match args {
            [ev, mon, my, ..] if ev == "add-client" => Event::Add {
                mon_name: mon.clone(),
                my_name: my.clone(),
            },
            [ev, mon, my, ..] if ev == "del-client" => Event::Del {
                mon_name: mon.clone(),
                my_name: my.clone(),
            },
            [ev, ..] => Event::Other(ev.clone()),
            [] => Event::Other(String::new()),
        }
    }
}

/// The record file in `sm` holding the (mon_name, my_name) registration,
/// and its records. statd names the file after its canonical name for
/// mon_name, usually mon_name itself (the client's address), so that is
/// tried first; otherwise the directory is searched.
pub fn locate(sm: &Path, mon_name: &str, my_name: &str) -> Option<(String, Vec<MonitorRecord>)> {
    let has = |recs: &[MonitorRecord]| {
        recs.iter()
            .any(|r| r.mon_name == mon_name && r.my_name == my_name)
    };
    // sm/ is statd's: what cannot be read as a record file is skipped.
    let read = |name: &str| match record::read_file(&sm.join(name)) {
        Ok(recs) => recs.filter(|r| has(r)),
        Err(e) => {
            log::warn!("skipped in {}: {e}", sm.display());
            None
        }
    };
    if record::valid_file_name(mon_name) {
        if let Some(recs) = read(mon_name) {
            return Some((mon_name.to_string(), recs));
        }
    }
    record::list_names(sm)
        .into_iter()
        .find_map(|name| read(&name).map(|recs| (name, recs)))
}

/// What to do to one holding directory.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Op {
    Add {
        name: String,
        records: Vec<MonitorRecord>,
    },
    Remove {
        name: String,
        mon_name: String,
    },
}

/// The operation for `event` on a registration, given this node's `sm/`.
/// Draining (stopped) registrations only ever get additions.
pub fn plan(event: &Event, reg: &Registration, sm: &Path) -> Option<Op> {
    match event {
        Event::Add { mon_name, my_name } => {
            let (name, recs) = locate(sm, mon_name, my_name)?;
            let line = recs
                .into_iter()
                .rfind(|r| &r.mon_name == mon_name && &r.my_name == my_name)?;
            Some(Op::Add {
                name,
                records: vec![line],
            })
        }
        Event::Del { .. } if !reg.active => None,
        Event::Del { mon_name, my_name } => match locate(sm, mon_name, my_name) {
            Some((name, recs)) => {
                // statd removes only this (mon_name, my_name) line; another
                // line for the same client keeps it monitored.
                match recs
                    .into_iter()
                    .rfind(|r| &r.mon_name == mon_name && &r.my_name != my_name)
                {
                    Some(other) => Some(Op::Add {
                        name,
                        records: vec![other],
                    }),
                    None => Some(Op::Remove {
                        name,
                        mon_name: mon_name.clone(),
                    }),
                }
            }
            None => Some(Op::Remove {
                name: mon_name.clone(),
                mon_name: mon_name.clone(),
            }),
        },
        Event::Other(_) => None,
    }
}

/// Apply `op` to the registration's holding directory, if it is still the
/// directory registered, under the instance lock.
pub fn apply(reg: &Registration, registry: &Registry, op: &Op) -> Result<Change, String> {
    let h = &reg.holding_dir;
    reg.holding_dir_unchanged()
        .map_err(|e| format!("{e}; skipped"))?;
    let _lock = registry.lock(&reg.instance, LOCK_WAIT);
    let r = match op {
        Op::Add { name, records } => holding::add(h, name, records, None),
        Op::Remove { name, mon_name } => holding::remove(h, name, mon_name, None),
    };
    r.map_err(|e| format!("{}: {}", h.display(), holding::io_reason(&e)))
}

/// Handle one callout: every registration receiving callouts, each in a
/// child process, all within `budget`. Returns (instance, outcome) for
/// the instances that had something to do; an instance still busy at the
/// end of the budget is abandoned (killed) and reported as such.
pub fn handle(
    event: &Event,
    registry: &Registry,
    budget: Duration,
) -> Vec<(String, Result<(), String>)> {
    let deadline = Deadline::after(budget);
    // A client every instance holds already (each one reclaiming after a
    // takeover): nothing to do, said at once from the markers on /run,
    // without a child or the shared storage (see registry's notes).
    if let Event::Add { mon_name, .. } = event {
        let now = registry::now_secs();
        let regs: Vec<Registration> = (registry.list().into_iter())
            .filter(|r| r.receives_callouts(now))
            .collect();
        if regs
            .iter()
            .all(|r| registry.is_recorded(&r.instance, mon_name))
        {
            log::debug!("{}: recorded already", event_word(event));
            return regs.into_iter().map(|r| (r.instance, Ok(()))).collect();
        }
    }
    // The reads (registry, sm/) count against the budget too: done in a
    // child that is abandoned at the deadline.
    let planned = bounded::run(&deadline, "reading the registrations and sm/", || {
        let now = registry::now_secs();
        Ok(registry
            .list()
            .into_iter()
            .filter(|r| r.receives_callouts(now))
            .filter_map(|r| {
                let sm = r.statd_dir.join("sm");
                plan(event, &r, &sm).map(|op| (r, op))
            })
            .collect::<Vec<(Registration, Op)>>())
    });
    let jobs = match planned {
        Ok(j) => j,
        Err(e) => {
            log::error!("{e}: {} not recorded", event_word(event));
            return vec![("(all)".to_string(), Err(e.to_string()))];
        }
    };
    // All instances at once, each in its own child: a hung holding
    // directory does not hold up the others.
    let running: Vec<_> = jobs
        .iter()
        .map(|(reg, op)| {
            if let Op::Remove { mon_name, .. } = op {
                if let Err(e) = registry.forget_recorded(&reg.instance, mon_name) {
                    log::warn!("{}: {e}", reg.instance);
                }
            }
            let what = format!("updating {}", reg.holding_dir.display());
            (reg, op, bounded::spawn(&what, || apply(reg, registry, op)))
        })
        .collect();
    let mut out = Vec::new();
    for (reg, op, job) in running {
        let outcome = job
            .and_then(|j| j.wait(&deadline))
            .map_err(|e| e.to_string());
        match &outcome {
            Ok(ch) => log::info!(
                "{} {:?} -> {} {:?}",
                reg.instance,
                event_word(event),
                reg.holding_dir.display(),
                ch
            ),
            Err(e) => match op {
                Op::Add { name, .. } => log::error!(
                    "{}: cannot record NFSv3 lock holder {name} in holding_dir ({e}): it is not protected against a failover until it is; statd-holding's monitor fails until then",
                    reg.instance
                ),
                Op::Remove { name, .. } => log::warn!(
                    "{}: cannot remove {name}, no longer monitored, from holding_dir ({e}): a stale record costs one needless notification",
                    reg.instance
                ),
            },
        }
        remember(registry, reg, op, &outcome);
        out.push((reg.instance.clone(), outcome.map(|_| ())));
    }
    out
}

/// Note a client the callout could not record, for the monitor to report
/// and retry ([`Registry::unrecorded`]); forget it once it is recorded or
/// no longer monitored.
fn remember(registry: &Registry, reg: &Registration, op: &Op, outcome: &Result<Change, String>) {
    let r = match (op, outcome) {
        (Op::Add { name, .. }, Err(e)) => registry.note_unrecorded(&reg.instance, name, e),
        (Op::Add { name, records }, Ok(_)) => {
            registry.note_recorded(&reg.instance, records);
            registry.clear_unrecorded(&reg.instance, name)
        }
        (Op::Remove { name, .. }, _) => registry.clear_unrecorded(&reg.instance, name),
    };
    if let Err(e) = r {
        log::error!("{}: {e}", reg.instance);
    }
}

fn event_word(e: &Event) -> String {
    match e {
        Event::Add { mon_name, my_name } => format!("add-client {mon_name} {my_name}"),
        Event::Del { mon_name, my_name } => format!("del-client {mon_name} {my_name}"),
        Event::Other(s) => s.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(mon: &str, my: &str) -> String {
        format!("0100007f 000186b5 00000004 00000010 00112233445566778899aabbccddeeff {mon} {my}\n")
    }

    fn setup() -> (tempfile::TempDir, Registry, Registration) {
        let d = tempfile::tempdir().unwrap();
        let base = d.path();
        std::fs::create_dir_all(base.join("nfs/sm")).unwrap();
        std::fs::create_dir_all(base.join("hold")).unwrap();
        let registry = Registry::at(base.join("reg"));
        let reg = Registration {
            instance: "svc".into(),
            holding_dir: base.join("hold"),
            holding_id: registry::dir_id(&base.join("hold")).unwrap(),
            statd_dir: base.join("nfs"),
            ips: vec!["192.0.2.10".into()],
            active: true,
            drain_until: 0,
            notifiers: vec![],
            reconciled_at: 0,
            fully_reconciled_at: 0,
            lockd: None,
            reported: vec![],
        };
        registry.save(&reg).unwrap();
        (d, registry, reg)
    }

    fn args(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn parses_statd_arguments() {
        assert_eq!(
            Event::parse(&args("add-client 192.0.2.5 vm")),
            Event::Add {
                mon_name: "192.0.2.5".into(),
                my_name: "vm".into()
            }
        );
        assert_eq!(
            Event::parse(&args("del-client 192.0.2.5 vm")),
            Event::Del {
                mon_name: "192.0.2.5".into(),
                my_name: "vm".into()
            }
        );
        assert_eq!(
            Event::parse(&args("sm-notify peer 192.0.2.5 3")),
            Event::Other("sm-notify".into())
        );
        assert_eq!(Event::parse(&[]), Event::Other("".into()));
    }

    #[test]
    fn add_then_del_round_trip() {
        let (d, registry, reg) = setup();
        let sm = d.path().join("nfs/sm");
        std::fs::write(sm.join("192.0.2.5"), line("192.0.2.5", "vm")).unwrap();
        let add = Event::parse(&args("add-client 192.0.2.5 vm"));
        let r = handle(&add, &registry, BUDGET);
        assert_eq!(r, vec![("svc".to_string(), Ok(()))]);
        assert_eq!(
            std::fs::read_to_string(reg.holding_dir.join("192.0.2.5")).unwrap(),
            line("192.0.2.5", "vm")
        );
        // del-client comes while statd still has the line
        let del = Event::parse(&args("del-client 192.0.2.5 vm"));
        handle(&del, &registry, BUDGET);
        assert!(!reg.holding_dir.join("192.0.2.5").exists());
    }

    /// [`setup`], started (markers reset), and statd monitoring 192.0.2.5.
    fn started_with_client() -> (tempfile::TempDir, Registry, Registration) {
        let (d, registry, reg) = setup();
        registry
            .prepare_for_callout(&reg.instance, None, &Default::default())
            .unwrap();
        let sm = d.path().join("nfs/sm");
        std::fs::write(sm.join("192.0.2.5"), line("192.0.2.5", "vm")).unwrap();
        (d, registry, reg)
    }

    /// A client held already is answered from its marker, without the
    /// holding directory; del-client takes the marker away first.
    #[test]
    fn a_recorded_client_is_answered_from_its_marker() {
        let (_d, registry, reg) = started_with_client();
        let add = Event::parse(&args("add-client 192.0.2.5 vm"));
        assert!(!registry.is_recorded("svc", "192.0.2.5"));
        assert_eq!(
            handle(&add, &registry, BUDGET),
            vec![("svc".into(), Ok(()))]
        );
        assert!(registry.is_recorded("svc", "192.0.2.5"));
        // the shortcut does not look at the holding directory
        let held = reg.holding_dir.join("192.0.2.5");
        std::fs::remove_file(&held).unwrap();
        assert_eq!(
            handle(&add, &registry, BUDGET),
            vec![("svc".into(), Ok(()))]
        );
        assert!(!held.exists());
        // del-client: the marker goes, and the next add writes again
        std::fs::write(&held, line("192.0.2.5", "vm")).unwrap();
        handle(
            &Event::parse(&args("del-client 192.0.2.5 vm")),
            &registry,
            BUDGET,
        );
        assert!(!held.exists() && !registry.is_recorded("svc", "192.0.2.5"));
        handle(&add, &registry, BUDGET);
        assert!(held.exists() && registry.is_recorded("svc", "192.0.2.5"));
        // a start marks what it took, and only that
        let mut taken = record::RecordSet::new();
        let r = MonitorRecord::parse(&line("192.0.2.6", "old")).unwrap();
        taken.insert("192.0.2.6".into(), vec![r]);
        registry.prepare_for_callout("svc", None, &taken).unwrap();
        assert!(registry.is_recorded("svc", "192.0.2.6"));
        assert!(!registry.is_recorded("svc", "192.0.2.5"));
        // a link planted for a marker is no marker
        std::os::unix::fs::symlink(&held, registry.recorded_dir("svc").join("192.0.2.7")).unwrap();
        assert!(!registry.is_recorded("svc", "192.0.2.7"));
    }

    /// A client the callout cannot write is remembered for the monitor,
    /// and forgotten once recorded or no longer monitored.
    #[test]
    fn unrecorded_clients_are_remembered_until_recorded() {
        let (_d, registry, reg) = started_with_client();
        std::fs::create_dir(reg.holding_dir.join("192.0.2.5")).unwrap();
        let add = Event::parse(&args("add-client 192.0.2.5 vm"));
        let r = handle(&add, &registry, BUDGET);
        assert!(r[0].1.is_err(), "{r:?}");
        let noted = registry.unrecorded("svc");
        assert_eq!(noted.len(), 1, "{noted:?}");
        assert_eq!(noted[0].name, "192.0.2.5");
        assert!(noted[0].why.contains("is a directory"), "{noted:?}");
        std::fs::remove_dir(reg.holding_dir.join("192.0.2.5")).unwrap();
        assert_eq!(handle(&add, &registry, BUDGET)[0].1, Ok(()));
        assert!(registry.unrecorded("svc").is_empty());
        // del-client forgets it too
        std::fs::write(reg.holding_dir.join("192.0.2.5"), "").unwrap();
        registry.note_unrecorded("svc", "192.0.2.5", "x").unwrap();
        handle(
            &Event::parse(&args("del-client 192.0.2.5 vm")),
            &registry,
            BUDGET,
        );
        assert!(registry.unrecorded("svc").is_empty());
        registry.note_unrecorded("svc", "192.0.2.5", "x").unwrap();
        registry.remove("svc").unwrap();
        assert!(!registry.unrecorded_dir("svc").exists());
    }

    #[test]
    fn finds_records_under_canonical_names() {
        let (d, _registry, reg) = setup();
        let sm = d.path().join("nfs/sm");
        std::fs::write(sm.join("client.example.com"), line("192.0.2.7", "vm")).unwrap();
        let op = plan(&Event::parse(&args("add-client 192.0.2.7 vm")), &reg, &sm).unwrap();
        assert!(
            matches!(&op, Op::Add { name, .. } if name == "client.example.com"),
            "{op:?}"
        );
        // unknown client: nothing to add
        assert_eq!(
            plan(&Event::parse(&args("add-client 192.0.2.8 vm")), &reg, &sm),
            None
        );
    }

    #[test]
    fn another_line_keeps_the_client() {
        let (d, _registry, reg) = setup();
        let sm = d.path().join("nfs/sm");
        std::fs::write(
            sm.join("192.0.2.5"),
            format!("{}{}", line("192.0.2.5", "old"), line("192.0.2.5", "vm")),
        )
        .unwrap();
        let op = plan(&Event::parse(&args("del-client 192.0.2.5 vm")), &reg, &sm).unwrap();
        assert!(
            matches!(&op, Op::Add { records, .. } if records[0].my_name == "old"),
            "{op:?}"
        );
    }

    #[test]
    fn draining_only_adds_and_a_replaced_directory_is_skipped() {
        let (d, registry, mut reg) = setup();
        let sm = d.path().join("nfs/sm");
        std::fs::write(sm.join("192.0.2.5"), line("192.0.2.5", "vm")).unwrap();
        reg.active = false;
        reg.drain_until = registry::now_secs() + 60;
        registry.save(&reg).unwrap();
        assert_eq!(
            plan(&Event::parse(&args("del-client 192.0.2.5 vm")), &reg, &sm),
            None
        );
        handle(
            &Event::parse(&args("add-client 192.0.2.5 vm")),
            &registry,
            BUDGET,
        );
        assert!(reg.holding_dir.join("192.0.2.5").exists());
        // expired: ignored entirely
        reg.drain_until = 1;
        registry.save(&reg).unwrap();
        assert!(handle(
            &Event::parse(&args("add-client 192.0.2.5 vm")),
            &registry,
            BUDGET
        )
        .is_empty());
        // replaced directory (e.g. the shared file system was unmounted)
        reg.active = true;
        reg.holding_id = (0, 0);
        let op = Op::Add {
            name: "x".into(),
            records: vec![],
        };
        assert!(apply(&reg, &registry, &op)
            .unwrap_err()
            .contains("no longer"));
    }
}
