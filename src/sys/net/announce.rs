//! Telling the link that a floating address now lives here: gratuitous ARP
//! for IPv4, unsolicited neighbour advertisements for IPv6. Neighbours
//! (clients, routers) that cached the old node's hardware address switch
//! to ours at once instead of after their cache times out.
//!
//! The first announcement (and the first round of connection tickles)
//! goes out while start runs; the rest are sent by a detached announcer
//! process, so that start never waits for them. With a connection list
//! (`tickle_dir`), the announcer also records the connections once the
//! clients are back ([`RECORD_AFTER`]): a crash soon after a takeover
//! would otherwise find only what the last monitor saw, from before the
//! clients reconnected. Stop
//! kills the announcer, identified by pid *and* start time so that a
//! recycled pid is never mistaken for it.

use super::arp::ArpPacket;
use super::ndp;
use super::packet::PacketSocket;
use super::tickle::{self, Connection, LaterRounds};
use super::{net_error, Link, MacAddr, RouteSocket};
use crate::ocf::{self, Deadline, OcfResult};
use crate::sys::process::spawn_detached;
use crate::sys::procs::ProcId;
use serde::{Deserialize, Serialize};
use std::io;
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// When the announcer records the address's connections, after start:
/// once the clients tickled have reconnected (within a second) and the
/// NFSv3 clients notified by statd-holding, which starts after the
/// address, have opened their lock connections; the first monitor, right
/// after start, is too early for them.
pub const RECORD_AFTER: Duration = Duration::from_secs(5);

/// One address to announce on one link.
pub struct Announcement {
    sock: PacketSocket,
    link_index: u32,
    our_mac: MacAddr,
    ip: IpAddr,
}

impl Announcement {
    /// Needs `CAP_NET_RAW`; only Ethernet-like links have a hardware
    /// address to announce.
    pub fn open(link: &Link, ip: IpAddr) -> io::Result<Announcement> {
        let (sock, our_mac) = PacketSocket::for_neighbours(link, &ip)?;
        Ok(Announcement {
            sock,
            link_index: link.index,
            our_mac,
            ip,
        })
    }

    /// Send one gratuitous ARP (IPv4) or unsolicited neighbour
    /// advertisement (IPv6).
    pub fn send(&self) -> io::Result<()> {
        match self.ip {
            IpAddr::V4(ip) => self.sock.send(
                MacAddr::BROADCAST,
                &ArpPacket::announcement(self.our_mac, ip).to_bytes(),
            ),
            IpAddr::V6(ip) => self.sock.send(
                ndp::multicast_mac(ndp::ALL_NODES),
                &ndp::unsolicited_advertisement(self.our_mac, ip),
            ),
        }
    }

    /// Send `count` announcements `interval` apart (the first at once when
    /// `at_once`, else after one interval), stopping at `deadline` or when
    /// the address has left the link. Returns how many were sent.
    pub fn repeat(
        &self,
        count: u32,
        interval: Duration,
        at_once: bool,
        deadline: &Deadline,
    ) -> io::Result<u32> {
        let mut rt = RouteSocket::open(deadline)?;
        let mut sent = 0;
        while sent < count {
            if sent > 0 || !at_once {
                if deadline.remaining() < interval {
                    break;
                }
                std::thread::sleep(interval);
            }
            let here = rt
                .holders_of(&self.ip)?
                .iter()
                .any(|a| a.link_index == self.link_index);
            if !here {
                log::info!(
                    "{} left the interface; announcements stop after {sent}",
                    self.ip
                );
                break;
            }
            self.send()?;
            sent += 1;
        }
        Ok(sent)
    }
}

/// monitor's arp_count_refresh: `count` more announcements of `ip` on
/// `link`, `interval` apart, the first at once; a failure is only logged.
pub fn refresh(link: &Link, ip: IpAddr, count: u32, interval: Duration, deadline: &Deadline) {
    let nic = &link.name;
    let sent = Announcement::open(link, ip).and_then(|a| a.repeat(count, interval, true, deadline));
    match sent {
        Ok(n) => log::debug!("refreshed {ip} on {nic} with {n} announcements"),
        Err(e) => log::warn!("cannot refresh announcements of {ip} on {nic}: {e}"),
    }
}

/// What start leaves to a detached process, so that it never waits for
/// it: the remaining announcements, and the later rounds of connection
/// tickles ([`super::tickle`]).
pub struct Followup {
    pub link_index: u32,
    pub ip: IpAddr,
    /// Announcements still to send, and the time between two.
    pub announce: Option<(Announcement, u32, Duration)>,
    /// The later tickle rounds (their times from now).
    pub tickle: Option<LaterRounds>,
    /// The connection list's directory, written at [`RECORD_AFTER`].
    pub record: Option<std::path::PathBuf>,
}

enum Step {
    Announce,
    Tickle,
    Record,
}

impl Followup {
    fn is_empty(&self) -> bool {
        self.record.is_none()
            && !self.announce.as_ref().is_some_and(|a| a.1 > 0)
            && !self
                .tickle
                .as_ref()
                .is_some_and(|t| !t.conns.is_empty() && !t.at.is_empty())
    }

    /// Every step and its time from now, in order.
    fn plan(&self) -> Vec<(Duration, Step)> {
        let mut steps = Vec::new();
        if let Some((_, count, interval)) = &self.announce {
            steps.extend((1..=*count).map(|k| (*interval * k, Step::Announce)));
        }
        if let Some(t) = &self.tickle {
            steps.extend(t.at.iter().map(|d| (*d, Step::Tickle)));
        }
        if self.record.is_some() {
            steps.push((RECORD_AFTER, Step::Record));
        }
        steps.sort_by_key(|s| s.0);
        steps
    }

    /// Run the plan; stop early when the address has left the link.
    fn run(&self) -> io::Result<(u32, u32)> {
        let t0 = Instant::now();
        let plan = self.plan();
        let life =
            Deadline::after(plan.last().map(|s| s.0).unwrap_or_default() + Duration::from_secs(10));
        let mut rt = RouteSocket::open(&life)?;
        let (mut announced, mut tickled) = (0, 0);
        for (at, step) in plan {
            std::thread::sleep((t0 + at).saturating_duration_since(Instant::now()));
            let here = rt
                .holders_of(&self.ip)?
                .iter()
                .any(|a| a.link_index == self.link_index);
            if !here {
                log::info!("{} left the interface; its follow-up stops", self.ip);
                break;
            }
            match step {
                Step::Announce => {
                    if let Some((ann, _, _)) = &self.announce {
                        ann.send()?;
                        announced += 1;
                    }
                }
                Step::Tickle => {
                    if let Some(t) = &self.tickle {
                        t.tickler
                            .round(&t.conns, Instant::now() + Duration::from_secs(1));
                        tickled += 1;
                    }
                }
                Step::Record => {
                    if let Some(dir) = &self.record {
                        tickle::record_connections(dir, self.ip, &life);
                    }
                }
            }
        }
        Ok((announced, tickled))
    }
}

/// Run `followup` in a detached process (see
/// [`crate::sys::process::spawn_detached`]), which ends by itself after
/// the last step, or earlier when the address leaves the link. `None` when
/// there is nothing to do. The caller must be single-threaded.
pub fn spawn_followup(followup: Followup) -> OcfResult<Option<ProcId>> {
    if followup.is_empty() {
        return Ok(None);
    }
    spawn_detached(c"float-ip-announ", move || match followup.run() {
        Ok((a, t)) => {
            log::debug!(
                "follow-up of {} sent {a} announcements, {t} tickle rounds",
                followup.ip
            );
            0
        }
        Err(e) => {
            log::warn!("follow-up of {}: {e}", followup.ip);
            1
        }
    })
    .map(Some)
}

/// Tell the link and the clients that `ip` is here now: the first
/// announcement (when `count` > 0) and then at once the first round of
/// tickles to `conns`; the other `count - 1` announcements, `interval`
/// apart, the later tickle rounds and the recording of the connections in
/// `record` (the connection list's directory) from a detached follow-up,
/// returned to be recorded for stop. The caller must be single-threaded.
pub fn announce_and_tickle(
    link: &Link,
    ip: IpAddr,
    (count, interval): (u32, Duration),
    conns: Vec<Connection>,
    record: Option<&Path>,
    deadline: &Deadline,
) -> OcfResult<Option<ProcId>> {
    let what = || format!("cannot announce {ip} on {}", link.name);
    let mut announce = None;
    if count > 0 && link.talks_arp() {
        let ann = Announcement::open(link, ip).map_err(|e| net_error(what(), e))?;
        ann.send().map_err(|e| net_error(what(), e))?;
        announce = Some((ann, count - 1, interval));
    }
    let tickle = tickle::first_round(ip, conns, deadline);
    let announcer = spawn_followup(Followup {
        link_index: link.index,
        ip,
        announce,
        tickle,
        record: record.map(Path::to_path_buf),
    })?;
    if let Some(p) = &announcer {
        log::debug!("announcer {} sends the rest", p.pid);
    }
    Ok(announcer)
}

/// What float-ip keeps in its state file (the one runtime state format,
/// [`crate::ocf::save_state`]): the announcer, for stop to end it.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Record {
    announcer: Option<ProcId>,
}

/// Keep the announcer's identity in `state_file` for stop. The record only
/// lets stop end it early (it ends by itself), so failing to write it must
/// not fail a working address: it is logged.
pub fn record_announcer(state_file: &Path, announcer: Option<ProcId>) {
    if let Err(e) = ocf::save_state(state_file, &Record { announcer }) {
        log::warn!("{e}: stop will not end the announcer early");
    }
}

/// The announcer recorded in `state_file`. A record that cannot be read is
/// logged and taken as none: a damaged file, or the text line
/// `announcer <pid> <start>` that float-ip wrote before the one state
/// format, found by stop on a node upgraded while the address was up. The
/// announcer ends by itself once the address has left the link, so all
/// that is lost is the early end.
fn recorded_announcer(state_file: &Path) -> Option<ProcId> {
    match ocf::load_state::<Record>(state_file) {
        Ok(r) => r.and_then(|r| r.announcer),
        Err(e) => {
            log::info!(
                "{e} (from an older version?): no announcer to end; it stops by itself once the address is gone"
            );
            None
        }
    }
}

/// End the announcer recorded in `state_file`, if it still runs.
pub fn stop_announcer(state_file: &Path) {
    if let Some(p) = recorded_announcer(state_file) {
        if p.signal(nix::sys::signal::Signal::SIGKILL) {
            log::info!("stopped announcer {}", p.pid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcer_record_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("run/hanfs-float-ip-a");
        assert_eq!(recorded_announcer(&f), None);
        let p = ProcId {
            pid: 4242,
            start: 987654,
        };
        record_announcer(&f, Some(p));
        assert_eq!(recorded_announcer(&f), Some(p));
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
        assert_eq!(json["announcer"]["pid"], 4242);
        record_announcer(&f, None);
        assert_eq!(recorded_announcer(&f), None);
    }

    /// A node upgraded while the address was up: the previous version's
    /// text record (or its empty file when it had no announcer) is taken
    /// as no announcer, with a log line; stop goes on.
    #[test]
    fn an_old_text_record_is_no_announcer() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("hanfs-float-ip-a");
        for old in ["announcer 4242 987654\n", ""] {
            std::fs::write(&f, old).unwrap();
            assert_eq!(recorded_announcer(&f), None, "{old:?}");
            stop_announcer(&f);
        }
    }
}
