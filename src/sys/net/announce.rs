//! Telling the link that a floating address now lives here: gratuitous ARP
//! for IPv4, unsolicited neighbour advertisements for IPv6. Neighbours
//! (clients, routers) that cached the old node's hardware address switch
//! to ours at once instead of after their cache times out.
//!
//! The first announcement goes out while start runs; the rest are sent by
//! a detached announcer process, so that start never waits for them. Stop
//! kills the announcer, identified by pid *and* start time so that a
//! recycled pid is never mistaken for it.

use super::arp::ArpPacket;
use super::ndp;
use super::packet::PacketSocket;
use super::{Link, MacAddr, RouteSocket};
use crate::ocf::{Deadline, OcfError, OcfResult};
use crate::sys::procs::ProcId;
use nix::sys::wait::waitpid;
use nix::unistd::{fork, setsid, ForkResult};
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::time::Duration;

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

/// Send `count` announcements, each `interval` after the previous one
/// (the first one interval from now), from a detached process
/// (own session, standard streams on /dev/null, so that neither the
/// caller nor whoever reads its output waits for it). The process ends by
/// itself after the last one, or earlier when the address leaves the link.
/// The caller must be single-threaded.
pub fn spawn_announcer(ann: Announcement, count: u32, interval: Duration) -> OcfResult<ProcId> {
    let (rd, wr) = nix::unistd::pipe().map_err(|e| OcfError::generic(format!("pipe: {e}")))?;
    let (mut rd, wr) = (std::fs::File::from(rd), std::fs::File::from(wr));
    // SAFETY: agents are single-threaded.
    match unsafe { fork() } {
        Err(e) => Err(OcfError::generic(format!("fork: {e}"))),
        Ok(ForkResult::Child) => {
            drop(rd);
            let _ = setsid();
            // SAFETY: still single-threaded.
            match unsafe { fork() } {
                Ok(ForkResult::Parent { child }) => {
                    let mut wr = wr;
                    let _ = wr.write_all(&child.as_raw().to_le_bytes());
                    unsafe { libc::_exit(0) }
                }
                Ok(ForkResult::Child) => {
                    drop(wr);
                    detach_stdio();
                    let _ = nix::sys::prctl::set_name(c"float-ip-announ");
                    let life = Deadline::after(interval * count + Duration::from_secs(10));
                    let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match ann
                        .repeat(count, interval, false, &life)
                    {
                        Ok(n) => {
                            log::debug!("announcer sent {n} announcements of {}", ann.ip);
                            0
                        }
                        Err(e) => {
                            log::warn!("announcer for {}: {e}", ann.ip);
                            1
                        }
                    }))
                    .unwrap_or(1);
                    unsafe { libc::_exit(code) }
                }
                Err(_) => unsafe { libc::_exit(1) },
            }
        }
        Ok(ForkResult::Parent { child }) => {
            drop(wr);
            let mut b = [0u8; 4];
            let got = rd.read_exact(&mut b);
            let _ = waitpid(child, None);
            got.map_err(|e| OcfError::generic(format!("announcer did not start: {e}")))?;
            let pid = i32::from_le_bytes(b);
            // It may already be done (a short run); then there is nothing to
            // record, and a dead reference is harmless.
            Ok(ProcId::of(pid).unwrap_or(ProcId { pid, start: 0 }))
        }
    }
}

fn detach_stdio() {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for fd in 0..3 {
            // SAFETY: dup2 onto the standard descriptors.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
}
