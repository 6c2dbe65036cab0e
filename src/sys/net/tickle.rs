//! Connection tickles: after a floating address moves, make every client
//! whose TCP connection died with the old node notice at once.
//!
//! A client whose server went silent only finds out at its next TCP
//! retransmission (6, 12, 25, 51 s after the silence began). A "tickle"
//! is a bare ACK from the floating address and port to the client's port
//! with sequence numbers that cannot be in its window: the client answers
//! with an ACK that carries its real numbers, this node (which has no such
//! connection) answers that with a reset, and the client reconnects now.
//! The method of CTDB and of heartbeat's portblock (`tickle_dir`); the
//! window value 1234 is theirs too, easy to spot in a capture.
//!
//! The connections are recorded on the service's shared storage while the
//! address is up ([`ConnectionList`]), one `local:port<TAB>remote:port`
//! line each, the format portblock writes to its `tickle_dir`, so a list
//! either wrote can be read by the other.
//!
//! float-ip calls this as three steps: [`record_connections`] (monitor,
//! and stop before the address goes), [`recorded_connections`] (start,
//! before the address is added), and [`first_round`] right after the first
//! announcement, whose [`LaterRounds`] the announcer's follow-up sends.

use super::sockdiag;
use crate::ocf::{Deadline, OcfError, OcfResult};
use crate::sys::bounded;
use crate::sys::fsfile;
use crate::sys::storage::{self, DirProblem, Look};
use std::collections::BTreeSet;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The tickle's TCP window, as CTDB and portblock send it.
const WINDOW: u16 = 1234;

/// A TCP connection, from this node's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Connection {
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

/// The recorded connections of one floating address, and the lines of a
/// list file that could not be read.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ConnectionList {
    pub connections: Vec<Connection>,
    /// Lines skipped: not two socket addresses, or another local address.
    pub skipped: usize,
}

impl ConnectionList {
    /// Render in the list file's format (sorted, one line each).
    pub fn render(conns: &[Connection]) -> String {
        let set: BTreeSet<&Connection> = conns.iter().collect();
        let mut s = String::with_capacity(set.len() * 48);
        for c in set {
            s.push_str(&format!("{}\t{}\n", c.local, c.remote));
        }
        s
    }

    /// Parse a list file's text, keeping the connections of `ip`. A torn,
    /// foreign or hostile file gives what could be read and the count of
    /// the rest; it never fails.
    pub fn parse(text: &str, ip: IpAddr) -> ConnectionList {
        let mut set = BTreeSet::new();
        let mut skipped = 0;
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let mut f = line.split_whitespace();
            let parsed = match (f.next(), f.next(), f.next()) {
                (Some(a), Some(b), None) => a
                    .parse::<SocketAddr>()
                    .ok()
                    .zip(b.parse::<SocketAddr>().ok()),
                _ => None,
            };
            match parsed {
                Some((local, remote))
                    if local.ip() == ip
                        && local.port() != 0
                        && remote.port() != 0
                        && remote.is_ipv4() == ip.is_ipv4()
                        && !remote.ip().is_unspecified()
                        && !remote.ip().is_multicast() =>
                {
                    set.insert(Connection { local, remote });
                }
                _ => skipped += 1,
            }
        }
        ConnectionList {
            connections: set.into_iter().collect(),
            skipped,
        }
    }
}

/// The list file of `ip` in `dir`, named after the address as portblock
/// names it.
pub fn list_path(dir: &Path, ip: IpAddr) -> PathBuf {
    dir.join(ip.to_string())
}

/// The largest list file read: 10,000 connections take about 500 kB.
pub const LIST_CAP: u64 = 16 << 20;

/// A list file's text: `None` when there is none. What cannot be ours (a
/// symbolic link, a FIFO, a device) is refused without blocking, and the
/// size is capped ([`fsfile::read_own_file`]).
fn read_list_file(path: &Path) -> Result<Option<String>, String> {
    fsfile::read_own_file(path, LIST_CAP)
        .map(|b| b.map(|b| String::from_utf8_lossy(&b).into_owned()))
        .map_err(|e| e.to_string())
}

/// Store `conns` as the list of `ip` in `dir` (atomically: a crash leaves
/// the old list or the new one), unless it already holds exactly that.
/// Done in a child abandoned at `deadline`: the directory is on shared
/// storage, which may hang. `true` when the list was written.
pub fn record(
    dir: &Path,
    ip: IpAddr,
    conns: &[Connection],
    deadline: &Deadline,
) -> OcfResult<bool> {
    let path = list_path(dir, ip);
    let text = ConnectionList::render(conns);
    let what = format!("recording the connections in {}", path.display());
    Ok(bounded::run(deadline, &what, move || {
        if matches!(read_list_file(&path), Ok(Some(old)) if old == text) {
            return Ok(false);
        }
        fsfile::write_atomic(&path, text.as_bytes(), 0o644).map_err(|e| e.reason)?;
        Ok(true)
    })?)
}

/// What [`load`] found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Loaded {
    /// The directory is there; the list (empty when there is no file).
    List {
        text: String,
    },
    NoDirectory,
    NotADirectory,
}

/// Read the list of `ip` from `dir`, in a child abandoned at `deadline`.
pub fn load(dir: &Path, ip: IpAddr, deadline: &Deadline) -> OcfResult<(Loaded, ConnectionList)> {
    let (d, path) = (dir.to_path_buf(), list_path(dir, ip));
    let what = format!("reading {}", path.display());
    let loaded = bounded::run(deadline, &what, move || {
        match storage::look(&d, Look::Stat) {
            Err(DirProblem::Missing) => Ok(Loaded::NoDirectory),
            Err(DirProblem::NotADirectory) => Ok(Loaded::NotADirectory),
            Err(p) => Err(format!("{}: {p}", d.display())),
            Ok(_) => Ok(Loaded::List {
                text: read_list_file(&path)?.unwrap_or_default(),
            }),
        }
    })?;
    let list = match &loaded {
        Loaded::List { text } => ConnectionList::parse(text, ip),
        _ => ConnectionList::default(),
    };
    Ok((loaded, list))
}

/// The one's-complement sum used by the TCP checksum.
fn sum16(data: &[u8], mut acc: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        acc += u32::from(*b) << 8;
    }
    acc
}

/// The tickle for one connection: a 20-byte TCP header (ACK, sequence and
/// acknowledgement numbers 0), with its checksum over the pseudo-header.
pub fn segment(c: &Connection) -> [u8; 20] {
    let mut h = [0u8; 20];
    h[0..2].copy_from_slice(&c.local.port().to_be_bytes());
    h[2..4].copy_from_slice(&c.remote.port().to_be_bytes());
    // seq 4..8 and ack 8..12 stay 0
    h[12] = 5 << 4; // data offset: 5 words, no options
    h[13] = 0x10; // ACK
    h[14..16].copy_from_slice(&WINDOW.to_be_bytes());
    let mut acc = match (c.local.ip(), c.remote.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            sum16(&d.octets(), sum16(&s.octets(), 0)) + 6 + h.len() as u32
        }
        (s, d) => {
            let o = |a: IpAddr| match a {
                IpAddr::V6(a) => a.octets(),
                IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
            };
            sum16(&o(d), sum16(&o(s), 0)) + 6 + h.len() as u32
        }
    };
    acc = sum16(&h, acc);
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    let ck = !(acc as u16);
    h[16..18].copy_from_slice(&ck.to_be_bytes());
    h
}

/// A raw socket that sends tickles from one local address (which must be
/// on this node). Needs `CAP_NET_RAW`.
pub struct Tickler {
    sock: socket2::Socket,
    ip: IpAddr,
}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    pub sent: usize,
    pub failed: usize,
    /// Connections not tried: the round's time ran out.
    pub unsent: usize,
}

impl Tickler {
    pub fn open(ip: IpAddr) -> io::Result<Tickler> {
        use socket2::{Domain, Protocol, SockAddr, Socket, Type};
        let domain = if ip.is_ipv4() {
            Domain::IPV4
        } else {
            Domain::IPV6
        };
        let sock = Socket::new(domain, Type::RAW.cloexec(), Some(Protocol::TCP))?;
        // Incoming TCP is copied to raw TCP sockets: keep that queue small.
        let _ = sock.set_recv_buffer_size(0);
        let _ = sock.set_send_buffer_size(1 << 20);
        sock.bind(&SockAddr::from(SocketAddr::new(ip, 0)))?;
        sock.set_nonblocking(true)?;
        Ok(Tickler { sock, ip })
    }

    /// Send one tickle to each connection of this address, giving up on
    /// the rest when `until` passes (a full send buffer is waited for).
    pub fn round(&self, conns: &[Connection], until: Instant) -> Round {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        let mut r = Round::default();
        for (i, c) in conns.iter().enumerate() {
            if c.local.ip() != self.ip {
                continue;
            }
            let seg = segment(c);
            let to = socket2::SockAddr::from(SocketAddr::new(c.remote.ip(), 0));
            loop {
                match self.sock.send_to(&seg, &to) {
                    Ok(_) => {
                        r.sent += 1;
                        break;
                    }
                    Err(e)
                        if matches!(
                            e.raw_os_error(),
                            Some(libc::EAGAIN) | Some(libc::ENOBUFS) | Some(libc::EINTR)
                        ) =>
                    {
                        let left = until.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            r.unsent = conns.len() - i;
                            return r;
                        }
                        let ms = left.min(Duration::from_millis(50)).as_millis().max(1) as u16;
                        let mut fds = [PollFd::new(self.sock.as_fd(), PollFlags::POLLOUT)];
                        let _ = poll(&mut fds, PollTimeout::from(ms));
                    }
                    Err(e) => {
                        if r.failed == 0 {
                            log::debug!("tickle to {}: {e}", c.remote);
                        }
                        r.failed += 1;
                        break;
                    }
                }
            }
        }
        r
    }
}

/// When the tickle rounds go out, from the first one (sent as soon as the
/// address is up and announced). The client answers one out-of-window
/// segment per connection per `tcp_invalid_ratelimit` (500 ms by
/// default); rounds further apart than that each get an answer, so a
/// round lost with an announcement the client had not yet heard is made
/// up for.
pub const ROUNDS: [Duration; 3] = [
    Duration::ZERO,
    Duration::from_millis(600),
    Duration::from_millis(1800),
];

/// How long reading or writing the connection list may take at most: it
/// is on shared storage, which may hang.
pub const LIST_BUDGET: Duration = Duration::from_secs(5);

/// Record the established connections of `ip` in `dir` (when they
/// changed), for the node that takes the address over. Never fails the
/// action: a list not written only costs the clients their retransmission
/// wait.
pub fn record_connections(dir: &Path, ip: IpAddr, deadline: &Deadline) {
    let conns = match sockdiag::established_to(ip, deadline) {
        Ok(c) => c,
        Err(e) => {
            log::warn!("cannot list the connections of {ip}: {e}");
            return;
        }
    };
    let budget = deadline.within(LIST_BUDGET.min(deadline.remaining() / 2));
    match record(dir, ip, &conns, &budget) {
        Ok(true) => log::debug!(
            "recorded {} connection(s) of {ip} in {}",
            conns.len(),
            dir.display()
        ),
        Ok(false) => {}
        Err(e) => log::warn!("{e}"),
    }
}

/// The recorded connections of `ip` in `dir`, which start tickles. A
/// missing directory is a configuration problem (2); a list that cannot
/// be read, or hung storage, is logged and gives no tickles (never a
/// failed start).
pub fn recorded_connections(
    dir: &Path,
    ip: IpAddr,
    deadline: &Deadline,
) -> OcfResult<Vec<Connection>> {
    let budget = deadline.within(LIST_BUDGET.min(deadline.remaining() / 4));
    let (loaded, list) = match load(dir, ip, &budget) {
        Ok(l) => l,
        Err(e) => {
            log::warn!("{e}: no connection is tickled");
            return Ok(Vec::new());
        }
    };
    match loaded {
        Loaded::NoDirectory => Err(OcfError::args(format!(
            "tickle_dir {} does not exist on this node (is the shared file system mounted before this resource starts?)",
            dir.display()
        ))),
        Loaded::NotADirectory => Err(OcfError::args(format!(
            "tickle_dir {} is not a directory",
            dir.display()
        ))),
        Loaded::List { .. } => {
            if list.skipped > 0 {
                log::warn!(
                    "{}: skipped {} line(s) that are not connections of {ip}",
                    list_path(dir, ip).display(),
                    list.skipped,
                );
            }
            Ok(list.connections)
        }
    }
}

/// The local ports of `conns` that are not in `listening`.
fn unserved_ports(conns: &[Connection], listening: &BTreeSet<u16>) -> BTreeSet<u16> {
    conns
        .iter()
        .map(|c| c.local.port())
        .filter(|p| !listening.contains(p))
        .collect()
}

/// Name the recorded ports of `ip` nothing listens on yet (a client sent
/// there reconnects into a refusal and retries every 3 s): the resources
/// that listen should start before the address.
pub fn warn_unserved(ip: IpAddr, conns: &[Connection], deadline: &Deadline) {
    let Ok(listening) = sockdiag::listening_ports(ip, deadline) else {
        return;
    };
    let unserved = unserved_ports(conns, &listening);
    if !unserved.is_empty() {
        let ports: Vec<String> = unserved.iter().map(u16::to_string).collect();
        log::warn!(
            "nothing listens on port(s) {} of {ip} yet: those clients are tickled into a refused connection (start the NFS server before the address)",
            ports.join(", ")
        );
    }
}

/// The tickle rounds left after the first: the tickler, the connections,
/// and when each round goes out (from the first).
pub struct LaterRounds {
    pub tickler: Tickler,
    pub conns: Vec<Connection>,
    pub at: Vec<Duration>,
}

impl Round {
    /// What a round left undone, for its log line ("" when all went out).
    fn shortfall(&self) -> String {
        let mut s = String::new();
        if self.failed > 0 {
            s.push_str(&format!(", {} could not be sent", self.failed));
        }
        if self.unsent > 0 {
            s.push_str(&format!(", {} left for the next round", self.unsent));
        }
        s
    }
}

/// Tickle `conns` once now (within a second, cut short by `deadline`) and
/// return the later rounds ([`ROUNDS`]) for the follow-up. Never fails: a
/// client not tickled reconnects at its next retransmission.
pub fn first_round(ip: IpAddr, conns: Vec<Connection>, deadline: &Deadline) -> Option<LaterRounds> {
    if conns.is_empty() {
        return None;
    }
    let tickler = match Tickler::open(ip) {
        Ok(t) => t,
        Err(e) => {
            log::warn!("cannot tickle the clients of {ip}: {e}");
            return None;
        }
    };
    let t0 = Instant::now();
    let r = tickler.round(
        &conns,
        (t0 + Duration::from_secs(1)).min(deadline.instant()),
    );
    log::info!(
        "tickled {} recorded connection(s) of {ip} in {} ms{}",
        r.sent,
        t0.elapsed().as_millis(),
        r.shortfall()
    );
    Some(LaterRounds {
        tickler,
        conns,
        at: ROUNDS[1..].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(l: &str, r: &str) -> Connection {
        Connection {
            local: l.parse().unwrap(),
            remote: r.parse().unwrap(),
        }
    }

    #[test]
    fn list_round_trip_in_portblocks_format() {
        let v = vec![
            c("192.0.2.10:2049", "192.0.2.21:812"),
            c("192.0.2.10:2049", "192.0.2.20:700"),
            c("192.0.2.10:2049", "192.0.2.20:700"),
        ];
        let text = ConnectionList::render(&v);
        assert_eq!(
            text,
            "192.0.2.10:2049\t192.0.2.20:700\n192.0.2.10:2049\t192.0.2.21:812\n"
        );
        let l = ConnectionList::parse(&text, "192.0.2.10".parse().unwrap());
        assert_eq!(l.connections.len(), 2);
        assert_eq!(l.skipped, 0);
        let v6 = vec![c("[2001:db8::10]:2049", "[2001:db8::20]:900")];
        let text = ConnectionList::render(&v6);
        assert_eq!(text, "[2001:db8::10]:2049\t[2001:db8::20]:900\n");
        assert_eq!(
            ConnectionList::parse(&text, "2001:db8::10".parse().unwrap()).connections,
            v6
        );
    }

    #[test]
    fn torn_foreign_and_hostile_lines_are_skipped() {
        let ip: IpAddr = "192.0.2.10".parse().unwrap();
        let text = "192.0.2.10:2049\t192.0.2.20:700\n\
                    192.0.2.10:2049\t192.0.2\n\
                    192.0.2.11:2049\t192.0.2.20:701\n\
                    192.0.2.10:2049 192.0.2.20:702 extra\n\
                    192.0.2.10:0\t192.0.2.20:703\n\
                    192.0.2.10:2049\t[2001:db8::1]:704\n\
                    192.0.2.10:2049\t224.0.0.1:705\n\
                    \u{0}\u{ff}garbage\n\
                    \n\
                    192.0.2.10:2049    192.0.2.20:706";
        let l = ConnectionList::parse(text, ip);
        assert_eq!(
            l.connections,
            vec![
                c("192.0.2.10:2049", "192.0.2.20:700"),
                c("192.0.2.10:2049", "192.0.2.20:706")
            ]
        );
        assert_eq!(l.skipped, 7);
        assert_eq!(ConnectionList::parse("", ip), ConnectionList::default());
    }

    #[test]
    fn segment_is_a_bare_ack_with_a_valid_checksum() {
        let k = c("192.0.2.10:2049", "192.0.2.20:700");
        let s = segment(&k);
        assert_eq!(u16::from_be_bytes([s[0], s[1]]), 2049);
        assert_eq!(u16::from_be_bytes([s[2], s[3]]), 700);
        assert_eq!(&s[4..12], &[0; 8]);
        assert_eq!(s[13], 0x10);
        assert_eq!(u16::from_be_bytes([s[14], s[15]]), WINDOW);
        // summing the pseudo-header and the segment, checksum included,
        // gives all ones
        for k in [k, c("[2001:db8::10]:2049", "[2001:db8::20]:900")] {
            let s = segment(&k);
            let (a, b) = match (k.local.ip(), k.remote.ip()) {
                (IpAddr::V4(a), IpAddr::V4(b)) => (a.octets().to_vec(), b.octets().to_vec()),
                (IpAddr::V6(a), IpAddr::V6(b)) => (a.octets().to_vec(), b.octets().to_vec()),
                _ => unreachable!(),
            };
            let mut acc = sum16(&s, sum16(&b, sum16(&a, 0)) + 6 + 20);
            while acc > 0xffff {
                acc = (acc & 0xffff) + (acc >> 16);
            }
            assert_eq!(acc, 0xffff, "{k:?}");
        }
    }

    #[test]
    fn rounds_left_to_the_follow_up_and_their_log() {
        assert_eq!(
            ROUNDS[0],
            Duration::ZERO,
            "the first round goes out at once"
        );
        assert!(ROUNDS
            .windows(2)
            .all(|w| w[1] - w[0] > Duration::from_millis(500)));
        let all = Round {
            sent: 3,
            failed: 0,
            unsent: 0,
        };
        assert_eq!(all.shortfall(), "");
        let short = Round {
            sent: 1,
            failed: 2,
            unsent: 1,
        };
        assert_eq!(
            short.shortfall(),
            ", 2 could not be sent, 1 left for the next round"
        );
    }

    #[test]
    fn unserved_ports_are_those_nothing_listens_on() {
        let conns = vec![
            c("192.0.2.10:2049", "192.0.2.20:700"),
            c("192.0.2.10:20048", "192.0.2.20:701"),
            c("192.0.2.10:20048", "192.0.2.21:702"),
        ];
        let listening: BTreeSet<u16> = [2049].into();
        assert_eq!(unserved_ports(&conns, &listening), [20048].into());
        assert!(unserved_ports(&conns, &[2049, 20048].into()).is_empty());
    }

    // Property tests: any list file is read without a panic, keeping only
    // connections of the address; a list written reads back exactly.
    use proptest::prelude::*;

    fn v4() -> impl Strategy<Value = std::net::Ipv4Addr> {
        any::<[u8; 4]>()
            .prop_map(std::net::Ipv4Addr::from)
            .prop_filter("a client address", |a| {
                !a.is_unspecified() && !a.is_multicast()
            })
    }

    fn v6() -> impl Strategy<Value = std::net::SocketAddrV6> {
        (any::<[u8; 16]>(), 1u16.., any::<u32>())
            .prop_map(|(a, port, scope)| std::net::SocketAddrV6::new(a.into(), port, 0, scope))
            .prop_filter("a client address", |a| {
                !a.ip().is_unspecified() && !a.ip().is_multicast()
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_text_gives_only_connections_of_the_address(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let ip: IpAddr = "192.0.2.10".parse().unwrap();
            let text = String::from_utf8_lossy(&bytes);
            let l = ConnectionList::parse(&text, ip);
            prop_assert!(l.connections.iter().all(|c| c.local.ip() == ip));
            prop_assert!(l.connections.len() + l.skipped <= text.lines().count());
        }

        #[test]
        fn lists_round_trip_v4(
            lport in 1u16..,
            remotes in proptest::collection::vec((v4(), 1u16..), 0..8),
        ) {
            let ip: IpAddr = "192.0.2.10".parse().unwrap();
            let conns: Vec<Connection> = remotes
                .iter()
                .map(|&(a, p)| Connection {
                    local: SocketAddr::new(ip, lport),
                    remote: SocketAddr::new(a.into(), p),
                })
                .collect();
            let back = ConnectionList::parse(&ConnectionList::render(&conns), ip);
            let want: BTreeSet<Connection> = conns.into_iter().collect();
            prop_assert_eq!(back.skipped, 0);
            prop_assert_eq!(back.connections, want.into_iter().collect::<Vec<_>>());
        }

        #[test]
        fn lists_round_trip_v6(
            local in v6(),
            remotes in proptest::collection::vec(v6(), 0..8),
        ) {
            let ip = IpAddr::V6(*local.ip());
            let conns: Vec<Connection> = remotes
                .into_iter()
                .map(|r| Connection { local: local.into(), remote: r.into() })
                .collect();
            let back = ConnectionList::parse(&ConnectionList::render(&conns), ip);
            let want: BTreeSet<Connection> = conns.into_iter().collect();
            prop_assert_eq!(back.skipped, 0);
            prop_assert_eq!(back.connections, want.into_iter().collect::<Vec<_>>());
        }
    }
}
